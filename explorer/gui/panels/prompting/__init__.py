"""The Prompting panel (lecture: GPT-3's in-context learning), made of its views: the prompt builder, the
generation view and the K-shot sweep view."""
