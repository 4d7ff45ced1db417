"""What a grade looks like to people: text, JSON, and the job summary of the student template."""
