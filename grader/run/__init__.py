"""The engine: runs a lab's checks against a submission in the sandbox, and scores them."""
