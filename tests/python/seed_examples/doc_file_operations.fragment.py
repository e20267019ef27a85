# List files
files = sandbox.ls_info("/workspace")

# Read file
content = sandbox.read("/workspace/app.py")

# Write file
sandbox.write("/workspace/app.py", "print('hello')")

# Edit file
sandbox.edit("/workspace/app.py", "hello", "world")

# Search
matches = sandbox.grep_raw("def.*:", path="/workspace")
files = sandbox.glob_info("*.py", path="/workspace")
