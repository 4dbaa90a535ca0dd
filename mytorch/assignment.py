"""What a handout is made of: its old import path (mytorch/course/assignment.py now)."""

from mytorch.course.assignment import *  # noqa: F403 - every public name, as before the move
