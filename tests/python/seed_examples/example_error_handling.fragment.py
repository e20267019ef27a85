result = sandbox.execute("python nonexistent.py", timeout=10)

if result.exit_code != 0:
    print(f"Command failed (exit {result.exit_code})")
    print(result.output)

if result.truncated:
    print("Output was truncated (too long)")
