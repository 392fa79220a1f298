"""GPT-3 style prompting: prompts, tasks, generation, scoring, the K-shot sweep and the HTTP backend."""
