"""Reading dropped files: encodings (UTF-8, UTF-16 with BOM, Latin-1, GBK), binary refusal, huge files, random bytes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer.core.io.errors import InputError
from explorer.core.io.fileio import MAX_BYTES, decode_bytes, read_text_file

LATIN1 = [
    "café",
    "Müller",
    "résumé",
    "Ça va? Très bien, merci. À bientôt!",
    "Café au lait, naïve façade, crème brûlée.",
    "Die Straße ist groß und schön.",
]
GBK = [
    "你好",
    "中文",
    "单身狗",
    "哈巴狗是一种狗。",
    "预训练语言模型",
    "BERT 和 GPT-3 的区别是什么？",
    "这是一个测试文件，用于检测编码。",
]


@pytest.mark.parametrize("text", LATIN1)
def test_latin1_file(tmp_path, text):
    path = tmp_path / "latin.txt"
    path.write_bytes(text.encode("latin-1"))
    tf = read_text_file(path)
    assert tf.text == text
    assert tf.encoding == "latin-1"
    assert "Latin-1" in tf.note and "not UTF-8" in tf.note


def test_windows_1252_quotes(tmp_path):
    text = "\u201cSmart quotes\u201d \u2013 and the \u20ac sign."
    path = tmp_path / "cp1252.txt"
    path.write_bytes(text.encode("cp1252"))
    tf = read_text_file(path)
    assert (tf.text, tf.encoding) == (text, "cp1252")


@pytest.mark.parametrize("text", GBK)
def test_gbk_file(tmp_path, text):
    path = tmp_path / "gbk.txt"
    path.write_bytes(text.encode("gbk"))
    tf = read_text_file(path)
    assert tf.text == text
    assert tf.encoding in ("gbk", "gb18030")
    assert "Chinese" in tf.note


def test_lecture_notes_as_gbk(tmp_path):
    from explorer.core.io.paths import resources_dir

    seed = resources_dir().parents[2] / "shared" / "seed" / "bert-and-gpt3-lecture-notes.zh.txt"
    if not seed.is_file():
        pytest.skip("the lecture notes are not next to this checkout")
    text = seed.read_text(encoding="utf-8")[:3000]
    path = tmp_path / "notes-gbk.txt"
    path.write_bytes(text.encode("gb18030"))
    assert read_text_file(path).text == text


@pytest.mark.parametrize("encoding,text", [
    ("cp1251", "Привет, мир! Это проверка кодировки файла."),
    ("cp932", "日本語のテキストです。これはテストです。"),
    ("cp949", "한국어 텍스트입니다. 이것은 테스트입니다. 오늘은 날씨가 좋습니다. " * 5),
])
def test_other_encodings_fall_through_to_detection(tmp_path, encoding, text):
    """The GBK and Latin-1 guesses must not swallow Cyrillic, Japanese or (long) Korean text."""
    path = tmp_path / "other.txt"
    path.write_bytes(text.encode(encoding))
    assert read_text_file(path).text == text


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_bom(tmp_path, codec):
    text = "Hello 世界, naïve café.\nSecond line."
    bom = {"utf-16": b"", "utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}[codec]
    path = tmp_path / "u16.txt"
    path.write_bytes(bom + text.encode(codec))
    tf = read_text_file(path)
    assert tf.text == text
    assert tf.encoding == "utf-16"


def test_utf8_with_and_without_bom(tmp_path):
    text = "BERT 和 GPT-3: naïve café"
    (tmp_path / "a.txt").write_bytes(text.encode("utf-8"))
    (tmp_path / "b.txt").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    a, b = read_text_file(tmp_path / "a.txt"), read_text_file(tmp_path / "b.txt")
    assert a.text == b.text == text
    assert a.note == b.note == ""


def test_empty_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    tf = read_text_file(path)
    assert tf.text == "" and tf.note == ""


def test_binary_refused(tmp_path):
    path = tmp_path / "picture.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    with pytest.raises(InputError, match="picture.png looks like a binary file"):
        read_text_file(path)


def test_folder_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        read_text_file(tmp_path)
    with pytest.raises(InputError, match="Cannot read nothing.txt"):
        read_text_file(tmp_path / "nothing.txt")


def test_huge_file_is_sampled(tmp_path):
    line = "The quick brown fox jumps over the lazy dog. 单身狗\n"
    path = tmp_path / "huge.txt"
    reps = (MAX_BYTES + 1_000_000) // len(line.encode()) + 1
    path.write_text(line * reps, encoding="utf-8")
    assert path.stat().st_size > MAX_BYTES
    tf = read_text_file(path)
    assert tf.encoding == "utf-8"
    assert "huge.txt is 11." in tf.note and "only the first 10." in tf.note
    assert tf.text.endswith(line)  # cut at a line end, no half line or half character
    assert len(tf.text.encode()) <= MAX_BYTES
    assert tf.text.count("\n") == len(tf.text) // len(line)


def test_sample_of_one_long_line_keeps_whole_characters(tmp_path):
    path = tmp_path / "one-line.txt"
    path.write_text("狗" * 1000, encoding="utf-8")  # 3 bytes each; 100 is not a multiple of 3
    tf = read_text_file(path, max_bytes=100)
    assert tf.encoding == "utf-8"
    assert tf.text == "狗" * 33


def test_huge_utf16_sample(tmp_path):
    path = tmp_path / "u16.txt"
    path.write_bytes(b"\xff\xfe" + ("line 狗\n" * 100).encode("utf-16-le"))
    tf = read_text_file(path, max_bytes=101)
    assert tf.text.startswith("line 狗\n") and tf.text.endswith("\n") and "\ufffd" not in tf.text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_decode_random_bytes_never_crashes(data):
    try:
        text, encoding = decode_bytes(data)
    except InputError as err:
        assert str(err)
    else:
        assert isinstance(text, str) and isinstance(encoding, str) and encoding


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), limit=st.integers(min_value=1, max_value=500))
def test_read_random_bytes_never_crashes(tmp_path, data, limit):
    path = tmp_path / "random.bin"
    path.write_bytes(data)
    try:
        tf = read_text_file(path, max_bytes=limit)
    except InputError as err:
        assert path.name in str(err)
    else:
        assert isinstance(tf.text, str)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200), st.sampled_from(["utf-8", "utf-16", "utf-8-sig"]))
def test_unicode_round_trip(text, codec):
    """Any Unicode text saved as UTF-8 or with a BOM comes back exactly."""
    data = text.encode(codec, errors="surrogatepass")
    try:
        data.decode(codec)
    except UnicodeDecodeError:
        return  # lone surrogates are not text
    if codec == "utf-8" and text.startswith("\ufeff"):
        return  # indistinguishable from a UTF-8 BOM
    if codec == "utf-16" and text.startswith("\ufeff"):
        text = text.lstrip("\ufeff")  # the decoder drops BOM characters at the start
    assert decode_bytes(data)[0] == text
