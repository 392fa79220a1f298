"""One panel per lecture area: a module holding its ``<Key>Panel`` class, or a package of the panel and its views."""
