# Execute with timeout
result = sandbox.execute("python script.py", timeout=30)

print(result.output)      # stdout + stderr
print(result.exit_code)   # 0 = success
print(result.truncated)   # True if output was truncated
