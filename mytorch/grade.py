"""The grader's old import path: it lives in `mytorch.course` now (see mytorch/course/grade.py).

Kept because handouts' own tests import it (`from mytorch.grade import find_config, grade_item`).

>>> from mytorch.grade import grade_item, find_config
"""

from mytorch.course.draws import draw_examples
from mytorch.course.grade import add_arguments, run
from mytorch.course.grader import Grader, find_config, grade_item
from mytorch.course.jobs import Check, Job, layer_job, rule_job
from mytorch.course.judge import Result, compare, judge
from mytorch.course.klass import grade_class, submissions_in
from mytorch.course.launch import ChildRun, run_child
from mytorch.course.report import scores_line, table, to_json
from mytorch.course.selftest import install_wrong, self_test
from mytorch.course.submission import prepare_submission

__all__ = [
    "ChildRun", "Check", "Grader", "Job", "Result", "add_arguments", "compare", "draw_examples",
    "find_config", "grade_class", "grade_item", "install_wrong", "judge", "layer_job",
    "prepare_submission", "rule_job", "run", "run_child", "scores_line", "self_test", "submissions_in",
    "table", "to_json",
]
