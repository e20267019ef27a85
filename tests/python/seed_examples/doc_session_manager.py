from sbx import SessionManager

manager = SessionManager(
    image="python:3.12-slim",
    workspace_root="/app/workspaces",  # Persistent storage per user
)

# Create session for user
session_id = manager.create_session(user_id="alice")
sandbox = manager.get_session(session_id)

# User's files are isolated
sandbox.write("/workspace/secret.txt", "Alice's data")

# End session
manager.end_session(session_id)
