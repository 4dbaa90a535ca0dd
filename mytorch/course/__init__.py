"""The course wing: handouts, grading, a class at once, packaging for Gradescope and Autolab.

Nothing in the engine imports this package; it imports the engine. Read top-down:

- assignment.py   what a handout is made of: items, hints, grading.json (Config)
- handout.py      `python -m mytorch handout`: the student copy with stubs
- draws.py        a rule's inputs, drawn at grading time, and the finite-difference oracle
- jobs.py         what a child is asked for an item and what its answers must be
- child.py        the child process: the only place the student's code runs
- launch.py       starting a child with a time limit and reading back raw arrays
- sandbox.py      where a child runs: bubblewrap, else a uid of its own (as root), else as the grader
- untrusted.py    reading what a child hands back: no links, pipes, bombs or deep trees; safe names
- judge.py        answers against the grader's own numbers: a Result per item
- grader.py       a submission: one child per item
- report.py       the table, Gradescope's results.json, the scores line
- klass.py        a class at once
- selftest.py     can every item fail?
- grade.py        `python -m mytorch grade`
- functional_hw1.py, functional_hw2.py   the 2024 handouts' rule modules (old paths kept)
"""
