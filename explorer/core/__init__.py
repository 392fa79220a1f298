"""Qt-free model, text and analysis code shared by the window and the CLI."""
