"""One panel per lecture area; each module holds one ``<Key>Panel`` class."""
