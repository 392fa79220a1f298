"""Reading user files safely (encoding detection, binary refusal) and writing files atomically."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from explorer.core.io.errors import InputError
from explorer.core.io.progress import Progress, check, no_progress

TEXT_SUFFIXES = (".txt", ".md", ".csv", ".tsv", ".jsonl", ".json", ".text")
MAX_BYTES = 10 * 1024 * 1024


@dataclass
class TextFile:
    """A text file as read: its text, the encoding it was in, and anything the user should be told."""

    path: str
    text: str
    encoding: str
    note: str = ""


_WIDE = ("utf_16_le", "utf_16_be", "utf_32_le", "utf_32_be")


def bomless_wide_encoding(data: bytes) -> str | None:
    """UTF-16/32 without a byte-order mark (Windows tools write such files), as charset-normalizer detects it
    from the byte pattern; None when the bytes are not such text (binary files are not mistaken for it)."""
    from charset_normalizer import from_bytes

    sample = data[:_SCAN]
    best = from_bytes(sample[: len(sample) // 4 * 4], cp_isolation=list(_WIDE)).best()
    return best.encoding if best is not None and best.encoding in _WIDE else None


def _wide_candidate(data: bytes) -> bool:
    """Whether bytes with NULs may be BOM-less UTF-16/32: they are not UTF-8, or (when they also decode as UTF-8,
    which NULs do) the NULs sit in every other byte the way UTF-16 puts them beside Latin letters."""
    sample = data[:_SCAN]
    if b"\x00" not in sample:
        return False
    try:
        sample[: len(sample) - 4].decode("utf-8") if len(data) > _SCAN else data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    n = len(sample) // 4 * 4
    if n < 16:
        return False
    nul = [i for i in range(n) if sample[i] == 0]
    if len(nul) < max(2, n // 20):
        return False
    # UTF-16: spaces and Latin letters put their NUL on one parity only (Cyrillic, Greek keep high bytes there).
    if len({i % 2 for i in nul}) == 1:
        return True
    # UTF-32: the two high bytes of nearly every code unit are NUL (bytes 2-3 little-endian, 0-1 big-endian).
    units = n // 4
    for hi1, hi2, low in ((2, 3, 0), (1, 0, 3)):
        high_nul = sum(1 for k in range(0, n, 4) if sample[k + hi1] == 0 and sample[k + hi2] == 0)
        low_nul = sum(1 for k in range(0, n, 4) if sample[k + low] == 0)
        if high_nul >= 0.9 * units and low_nul <= 0.5 * units:
            return True
    return False


def looks_binary(data: bytes) -> bool:
    """NUL bytes or many control characters mean this is not text in any common encoding."""
    if not data:
        return False
    sample = data[:8192]
    if b"\x00" in sample:
        # UTF-16/32 text has NULs; decode_bytes reads it by its byte-order mark, or by its byte pattern.
        if sample.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
            return False
        return not _wide_candidate(data) or bomless_wide_encoding(data) is None
    control = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13, 27))
    return control / len(sample) > 0.05


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
# Without a BOM, UTF-16/32 guesses on short byte strings are nearly always wrong (NUL-free text is not UTF-16).
# Classic Mac code pages are decades out of use but win close calls (Cyrillic cp1251 read as mac_cyrillic).
_EXCLUDED = [
    "utf_16", "utf_16_le", "utf_16_be", "utf_32", "utf_32_le", "utf_32_be", "utf_7",
    "mac_cyrillic", "mac_greek", "mac_iceland", "mac_latin2", "mac_roman", "mac_turkish",
]
_OTHER_CJK = ("cp949", "euc_kr", "euc_jp", "cp932", "shift_jis", "big5", "big5hkscs", "johab", "iso2022_kr")
_SCAN = 65536  # bytes (or characters) inspected by the heuristics; the decode itself covers everything


def _gb2312_share(data: bytes) -> tuple[int, float]:
    """(double-byte characters, share of them in GB2312's hanzi/punctuation rows) in a GBK byte string.

    Real Chinese text is almost all GB2312 (both bytes 0xA1-0xFE); Latin-1 letters followed by ASCII letters
    also decode as GBK but land in the rare extension rows, which tells the two apart on a few bytes.
    """
    pairs = common = 0
    i, n = 0, min(len(data), _SCAN)
    while i < n:
        b = data[i]
        if b < 0x80:
            i += 1
            continue
        t = data[i + 1] if i + 1 < len(data) else 0
        if 0x30 <= t <= 0x39:  # GB18030 four-byte sequence
            i += 4
            continue
        pairs += 1
        if (0xA1 <= b <= 0xA9 or 0xB0 <= b <= 0xF7) and 0xA1 <= t <= 0xFE:
            common += 1
        i += 2
    return pairs, (common / pairs if pairs else 0.0)


def _try_chinese(data: bytes) -> tuple[str, str] | None:
    for codec in ("gbk", "gb18030"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        pairs, share = _gb2312_share(data)
        if not pairs or share < 0.75:
            return None
        if pairs >= 100:
            # Korean EUC-KR and Japanese EUC-JP have the same byte shape; on longer texts charset-normalizer's
            # language check tells them apart reliably (on a dozen characters it does not).
            from charset_normalizer import from_bytes

            best = from_bytes(data[:_SCAN], cp_isolation=["gb18030", *_OTHER_CJK]).best()
            if best is not None and best.encoding in _OTHER_CJK:
                try:
                    return data.decode(best.encoding), best.encoding
                except UnicodeDecodeError:
                    pass
        return text, codec
    return None


_C1_BYTE = re.compile(rb"[\x80-\x9f]")  # where Windows-1252 and Latin-1 differ


def _try_western(data: bytes) -> tuple[str, str] | None:
    """Latin-1 / Windows-1252, when the result reads like Western European text (mostly ASCII letters)."""
    try:
        text, codec = data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        text, codec = data.decode("latin-1"), "latin-1"
    if codec == "cp1252" and _C1_BYTE.search(data) is None:
        codec = "latin-1"  # the two agree on these bytes; latin-1 is the name people know
    sample = text[:_SCAN]
    letters = [c for c in sample if c.isalpha()]
    foreign = sum(1 for c in letters if ord(c) > 0x7F)
    controls = sum(1 for c in sample if 0x80 <= ord(c) <= 0x9F or (ord(c) < 32 and c not in "\t\n\r\f"))
    # Cyrillic or Greek read as Latin-1 become words made only of accented letters; French or German do not.
    if letters and foreign / len(letters) <= 0.4 and controls == 0:
        return text, codec
    return None


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode bytes of unknown encoding; (text, encoding).

    Order: byte-order mark, strict UTF-8, GBK/GB18030 when the bytes have the shape of Chinese text, Latin-1
    when the result reads like Western European text, then charset-normalizer for everything else. The two
    explicit guesses come first because charset-normalizer mis-reads short GBK and Latin-1 texts.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            if codec == "utf-32":
                # FF FE 00 00 is also a UTF-16 BOM followed by U+0000: UTF-32 only if it decodes to some text.
                try:
                    text = data.decode(codec)
                except UnicodeDecodeError:
                    continue
                if not text.lstrip("\ufeff"):
                    continue
                return text.lstrip("\ufeff"), codec
            return data.decode(codec, errors="replace").lstrip("\ufeff"), codec
    if _wide_candidate(data):
        wide = bomless_wide_encoding(data)
        if wide is not None:
            unit = 4 if "32" in wide else 2
            return data[: len(data) // unit * unit].decode(wide, errors="replace"), wide.replace("_", "-")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    found = _try_chinese(data) or _try_western(data)
    if found:
        return found
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_exclusion=_EXCLUDED).best()
    if best is None:
        raise InputError("This file is not text in any encoding I can recognise.")
    return str(best), best.encoding


def read_text_file(path: str | os.PathLike, max_bytes: int = MAX_BYTES) -> TextFile:
    """Read a text file the user dropped or chose, detecting its encoding and refusing binary data.

    Files over ``max_bytes`` are sampled: the first ``max_bytes`` up to a line end, with a note saying so.
    """
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p.name} is a folder, not a text file.")
    try:
        # Non-blocking open, then a type check on what was opened: opening a FIFO (named pipe) for reading
        # would otherwise wait forever for a writer, and a device could be read without end.
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise InputError(
                    f"{p.name} is not a regular file (it is a {_file_kind(st.st_mode)}); only text files are read."
                )
            size = st.st_size
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = fh.read(max_bytes)
        finally:
            os.close(fd)
    except OSError as err:
        raise InputError(f"Cannot read {p.name}: {err.strerror or err}.") from err
    if looks_binary(data):
        raise InputError(
            f"{p.name} looks like a binary file, not text. Use a .txt, .md, .csv, .tsv or .jsonl file."
        )
    note = ""
    if size > max_bytes:
        data = _cut_sample(data)
        note = (
            f"{p.name} is {size / 1e6:.1f} MB, more than the {max_bytes / 1e6:.0f} MB limit; "
            f"only the first {len(data) / 1e6:.1f} MB were read."
        )
    try:
        text, encoding = decode_bytes(data)
    except InputError:
        raise InputError(
            f"{p.name} is not text in any encoding I can recognise (tried UTF-8, GBK, Latin-1 and others). "
            "Save it as UTF-8 and open it again."
        ) from None
    if encoding not in ("utf-8", "ascii", "utf-8-sig"):
        note = (note + " " if note else "") + (
            f"Its encoding is {_ENCODING_NAMES.get(encoding, encoding)}, not UTF-8; the text was converted."
        )
    return TextFile(path=str(p), text=text, encoding=encoding, note=note)


def read_text_stream(stream: object, name: str = "standard input", max_bytes: int = MAX_BYTES) -> TextFile:
    """Text from a byte stream (standard input), through the same limits as a file: at most ``max_bytes`` read
    (a longer input is cut at a line, with a note; /dev/zero never fills memory), binary refused, the encoding
    detected (invalid UTF-8 is not a crash)."""
    data = stream.read(max_bytes + 1)  # type: ignore[attr-defined]
    note = ""
    if len(data) > max_bytes:
        data = _cut_sample(data[:max_bytes])
        note = f"{name} is longer than the {max_bytes / 1e6:.0f} MB limit; only the first {len(data) / 1e6:.1f} MB were read."
    if looks_binary(data):
        raise InputError(f"{name} looks like binary data, not text.")
    try:
        text, encoding = decode_bytes(data)
    except InputError:
        raise InputError(f"{name} is not text in any encoding I can recognise; give UTF-8 text.") from None
    return TextFile(path=name, text=text, encoding=encoding, note=note)


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "named pipe"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"), (stat.S_ISDIR, "folder")):
        if test(mode):
            return name
    return "special file"


def read_text_files(
    paths: list[str], progress: Progress = no_progress, cancel: object | None = None
) -> tuple[list[TextFile], list[str]]:
    """Read several files (for a job off the GUI thread); (the files read, a message per file that was not)."""
    good: list[TextFile] = []
    problems: list[str] = []
    for i, path in enumerate(paths):
        check(cancel)  # type: ignore[arg-type]
        try:
            good.append(read_text_file(path))
        except InputError as err:
            problems.append(str(err))
        progress((i + 1) / max(1, len(paths)), f"Read {Path(path).name}")
    return good, problems


_ENCODING_NAMES = {
    "gbk": "GBK (Chinese)", "gb18030": "GB18030 (Chinese)", "latin-1": "Latin-1", "cp1252": "Windows-1252",
    "utf-16": "UTF-16", "utf-32": "UTF-32", "utf-16-le": "UTF-16 (little-endian, no byte-order mark)",
    "utf-16-be": "UTF-16 (big-endian, no byte-order mark)", "utf-32-le": "UTF-32 (little-endian, no byte-order mark)",
    "utf-32-be": "UTF-32 (big-endian, no byte-order mark)", "big5": "Big5 (Chinese)", "cp949": "EUC-KR (Korean)",
    "cp932": "Shift-JIS (Japanese)", "cp1251": "Windows-1251 (Cyrillic)",
}


def _cut_sample(data: bytes) -> bytes:
    """Cut a sample at its last line end, so no character or line is split (UTF-16 keeps whole code units)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        le = data.startswith(b"\xff\xfe")
        newline = b"\n\x00" if le else b"\x00\n"
        cut = data.rfind(newline)
        while cut > 0 and cut % 2:  # only even offsets are code-unit boundaries
            cut = data.rfind(newline, 0, cut)
        return data[: cut + 2] if cut > 0 else data[: len(data) // 2 * 2]
    cut = data.rfind(b"\n")
    if cut > 0:
        return data[: cut + 1]
    # One huge line: drop a UTF-8 character cut in half at the end.
    start = len(data)
    while start > 0 and len(data) - start < 4 and 0x80 <= data[start - 1] < 0xC0:
        start -= 1
    if start > 0 and data[start - 1] >= 0xC0:
        lead = data[start - 1]
        need = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
        if len(data) - (start - 1) < need:
            return data[: start - 1]
    return data


def give_normal_permissions(path: str | os.PathLike) -> None:
    """mkstemp makes files readable by their owner only; give them the mode a plain open() would (umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


@contextmanager
def atomic_path(path: str | os.PathLike, allow_empty: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix, so exporters pick the format) for a writer that takes a
    file name. On success it is renamed onto ``path``; on failure, or when nothing was written, it is removed,
    so a failed write never leaves half a file or replaces a good one."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=p.suffix or ".tmp", dir=p.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if not allow_empty and tmp.stat().st_size == 0:
            raise OSError(f"nothing was written to {p.name}")
        give_normal_permissions(tmp)
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()


def backup_name(path: str | os.PathLike, tag: str = "broken") -> Path:
    """A new, unused name beside ``path`` for keeping a copy: ``session.broken-20261125-154501.json``, then
    ``…-2.json`` when that exists, so a second backup never overwrites the first."""
    import time

    p = Path(path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = p.with_name(f"{p.stem}.{tag}-{stamp}{p.suffix}")
    n = 2
    while candidate.exists():
        candidate = p.with_name(f"{p.stem}.{tag}-{stamp}-{n}{p.suffix}")
        n += 1
    return candidate


def move_aside(path: str | os.PathLike, tag: str = "broken") -> Path | None:
    """Rename a file the app cannot use to a fresh backup name beside it; the backup's path, or None if the
    rename failed (then the file stays where it is, still untouched)."""
    target = backup_name(path, tag)
    try:
        os.rename(path, target)
    except OSError:
        return None
    return target


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` through :func:`atomic_path`, flushed to disk before the rename."""
    with atomic_path(path, allow_empty=True) as tmp, tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def file_sha256(
    path: Path, cancel=None, progress: Progress = no_progress, start: float = 0.0, span: float = 0.0
) -> str:
    """sha256 of a file, read in 4 MB blocks; checks ``cancel`` between blocks and, when ``span`` > 0, reports
    progress from ``start`` to ``start + span``."""
    digest = hashlib.sha256()
    size = max(1, path.stat().st_size)
    done = 0
    with path.open("rb") as fh:
        while block := fh.read(4 << 20):
            check(cancel)
            digest.update(block)
            done += len(block)
            if span:
                progress(start + span * done / size, f"Checking {path.name} ({done / size:.0%})…")
    return digest.hexdigest()


_KNOWN_SHA256: dict[tuple[str, int, int], str] = {}
_KNOWN_LOCK = threading.Lock()


def remembered_sha256(path: Path, index: Path | None = None) -> str:
    """sha256 of a file, hashed once per (path, size, mtime): remembered in this process and, given ``index`` (a
    JSON file), across processes. Entries of files that no longer exist are dropped when the index is written."""
    st = path.stat()
    ident = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _KNOWN_LOCK:
        sha = _KNOWN_SHA256.get(ident)
    if sha is not None:
        return sha
    key = "|".join(map(str, ident))
    known: dict = {}
    if index is not None:
        try:
            known = json.loads(index.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            known = {}
        if not isinstance(known, dict):
            known = {}
        sha = known.get(key)
    if not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
        sha = file_sha256(path)
        if index is not None:
            known = {k: v for k, v in known.items() if Path(str(k).split("|", 1)[0]).exists()}
            known[key] = sha
            atomic_write_text(index, json.dumps(known, indent=1))
    with _KNOWN_LOCK:
        _KNOWN_SHA256[ident] = sha
    return sha


# ---------------------------------------------------------------- written folders: checksums and abandoned copies


def file_checksums(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, dict]:
    """Size, sha256 and modification time of every file in ``folder`` (not in ``skip``, not hidden), so a later
    check can tell whether they are still the ones written (see :func:`checksum_problem`)."""
    files = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.name not in skip and not p.name.startswith("."):
            st = p.stat()
            files[p.name] = {"size": st.st_size, "sha256": file_sha256(p), "mtime_ns": st.st_mtime_ns}
    return files


def checksum_problem(folder: Path, files: dict) -> tuple[str, bool]:
    """('' or what is wrong, whether a file was hashed again) for files listed by :func:`file_checksums`.

    Sizes are compared every time; a file whose modification time moved is hashed again and must match, and its
    entry takes the new time (the caller may save the list so the next check need not hash it).
    """
    rechecked = False
    for name, info in files.items():
        p = folder / name
        try:
            st = p.stat()
        except OSError:
            return f"{name} is missing", rechecked
        if not isinstance(info, dict) or st.st_size != info.get("size"):
            return (f"{name} has {st.st_size:,} bytes, not the "
                    f"{info.get('size') if isinstance(info, dict) else '?'} written", rechecked)
        if st.st_mtime_ns != info.get("mtime_ns"):
            if file_sha256(p) != info.get("sha256"):
                return f"{name} was changed since it was written (its sha256 differs)", rechecked
            info["mtime_ns"] = st.st_mtime_ns
            rechecked = True
    return "", rechecked


_TMP_NAME = re.compile(r"\.tmp(\d+)$")


def pid_alive(pid: int) -> bool:
    """Whether a process of that id exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_abandoned(root: Path, prefix: str = "") -> list[Path]:
    """Delete ``PREFIXNAME.tmpPID`` folders under ``root`` whose writing process is gone (a kill mid-write)."""
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for child in root.iterdir():
        found = _TMP_NAME.search(child.name)
        if (found and child.name.startswith(prefix) and child.is_dir() and int(found.group(1)) != os.getpid()
                and not pid_alive(int(found.group(1)))):
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    return removed


class ExportFolder:
    """A folder the app exports into without ever overwriting a file it did not write: what it writes is recorded
    (name and sha256) in ``.lmx-export.json`` there; a name taken by anything else gets a free name instead
    (``settings-2.json``)."""

    MANIFEST = ".lmx-export.json"

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            data = json.loads((self.folder / self.MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        files = data.get("files") if isinstance(data, dict) else None
        self.owned: dict[str, str] = {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}
        self.renamed: list[tuple[str, str]] = []

    def _ours(self, path: Path) -> bool:
        try:
            return (path.is_file() and not path.is_symlink() and path.name in self.owned
                    and file_sha256(path) == self.owned[path.name])
        except OSError:
            return False

    def target(self, name: str) -> Path:
        """Where to write ``name``: itself when free or written by an earlier export, else a free variant."""
        path = self.folder / name
        if not os.path.lexists(path) or self._ours(path):
            return path
        stem, suffix = Path(name).stem, Path(name).suffix
        n = 2
        while os.path.lexists(self.folder / f"{stem}-{n}{suffix}") and not self._ours(self.folder / f"{stem}-{n}{suffix}"):
            n += 1
        self.renamed.append((name, f"{stem}-{n}{suffix}"))
        return self.folder / f"{stem}-{n}{suffix}"

    def record(self, path: Path) -> None:
        """Remember a file this export wrote (call after writing it)."""
        self.owned[path.name] = file_sha256(path)

    def save(self) -> None:
        atomic_write_text(self.folder / self.MANIFEST, json.dumps({"files": self.owned}, indent=1))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: object) -> object:
    """A CSV cell a spreadsheet will not run: text starting with = + - @, a tab or a carriage return gets a leading
    ``'`` (OWASP's advice against CSV injection); numbers, and text that reads as one ("-0.5"), stay as they are."""
    if not isinstance(cell, str) or not cell.startswith(_FORMULA_START):
        return cell
    try:
        float(cell)
        return cell
    except ValueError:
        return "'" + cell


class SafeCsvWriter:
    """``csv.writer`` whose every row is made spreadsheet-safe (see :func:`spreadsheet_safe`)."""

    def __init__(self, buf: object) -> None:
        import csv

        self._writer = csv.writer(buf)

    def writerow(self, row: list) -> None:
        self._writer.writerow([spreadsheet_safe(c) for c in row])


def finite_data(obj: object) -> object:
    """``obj`` as plain JSON data with every non-finite float (NaN, ±inf) as None: strict JSON for exports."""
    import math

    import numpy as np

    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k if isinstance(k, str) else str(k): finite_data(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_data(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return finite_data(obj.tolist())
    if isinstance(obj, np.generic):
        return finite_data(obj.item())
    return obj
