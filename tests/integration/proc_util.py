"""proc_util: facts about a process the test started (t65_signals, t69_console_commands)."""


def gone(pid):
    """Has pid exited? A zombie, until the shell that started it reaps it, counts."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        # Gone before the open, or reaped between the open and the read (ESRCH).
        return True
