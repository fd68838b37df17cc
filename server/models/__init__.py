"""Model files and the small classes that run them (one class per model, each with prepare() and get())."""
