sandbox.stop()
