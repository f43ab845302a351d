"""Reference pages generated from the code; each module has render() -> str."""
