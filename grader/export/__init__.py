"""What is made from the declarations: stubs, the student release, notebooks, nbgrader, Gradescope, batches, plots."""
