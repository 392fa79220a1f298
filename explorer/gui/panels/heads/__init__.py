"""The Heads & fine-tuning panel (lecture: task heads and fine-tuning), made of its views: the run view, the
fine-tune lab, the evaluation view and the data drop."""
