"""The grading child's old path: it is mytorch/course/child.py now (`-m mytorch.grade_child` runs it)."""

from mytorch.course.child import decode, encode, main, run_tasks

__all__ = ["decode", "encode", "main", "run_tasks"]

if __name__ == "__main__":
    main()
