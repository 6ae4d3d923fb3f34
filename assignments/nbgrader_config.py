"""nbgrader configuration for the mlsys-lab course.

The course directory is this folder (``assignments/``): instructors run every ``nbgrader`` command
from here, headless, e.g. ``cd assignments && nbgrader autograde 00_notebook_thinking``. nbgrader
reads this file from the working directory, so no ``--config`` flag is needed. ``mlsys-lab notebooks``
(``make notebooks``) copies this file into a temporary course directory and runs the same commands
there, so what CI checks is what instructors run.

Nothing here names an absolute path: ``CourseDirectory.root`` defaults to the working directory,
and the gradebook (``gradebook.db``) lives beside this file (git-ignored).
"""

c = get_config()  # noqa: F821  (injected by traitlets when it loads this file)

# --- Course --------------------------------------------------------------------------------------
# The exchange, the formgrader and the gradebook key everything on this id.
c.CourseDirectory.course_id = "mlsys-lab"

# Files beside a source notebook ship to students (data stubs, images). Keep nbgrader's default
# ignores and add the caches and run outputs a notebook may leave behind when an instructor runs
# it in place, so they never reach notebooks/ or a student's release.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints",
    "*.pyc",
    "__pycache__",
    "feedback",
    ".DS_Store",
    "runs",
    "mlruns",
    "*.db",
    "*.log",
]

# --- Generating the student and solution versions -------------------------------------------------
# Python answer cells become this stub. The message tells a student what to do when the test
# below fails with NotImplementedError (the default stub's bare exception says nothing).
c.ClearSolutions.code_stub = {
    "python": '# YOUR CODE HERE\nraise NotImplementedError("Replace this line with your answer.")',
}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# nbgrader's default, pinned on purpose: fail on solution/hidden-test markers outside nbgrader
# cells instead of passing them through, which would ship the solution or the hidden tests.
c.ClearSolutions.enforce_metadata = True
c.ClearHiddenTests.enforce_metadata = True

# nbgrader's generate_solution executes the notebook by default (Execute preprocessor), which
# would run every lesson in full mode and commit outputs that change from run to run (timings,
# plots, memory addresses), breaking the byte-stable solutions/ folder. CI executes the solutions
# separately with papermill in fast mode. This is the default list without Execute.
c.GenerateSolution.preprocessors = [
    "nbgrader.preprocessors.IncludeHeaderFooter",
    "nbgrader.preprocessors.LockCells",
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.ClearMarkScheme",
]

# --- Autograding -----------------------------------------------------------------------------------
# A student who deletes a test cell still gets it: the cell is restored from the gradebook and graded.
c.OverwriteCells.add_missing_cells = True
# Seconds per cell. nbgrader's default (30 s) is shorter than a slow laptop needs for a training
# cell; a cell that times out scores zero. Notebooks stay fast under NBGRADER_EXECUTION anyway.
c.Execute.timeout = 600
# Grading must not hang forever on a kernel that never starts or never answers.
c.Execute.startup_timeout = 120
# Run each submission once; a flaky notebook is a bug to fix, not to retry.
c.Execute.execute_retries = 0
# Students are added to the gradebook the first time their submission is autograded, so a folder
# of submissions can be graded without registering every student first.
c.Autograde.create_student = True
# Restoring the hidden tests in a released test cell is the expected case, not an edit: nbgrader
# warns "Attribute 'checksum' for cell ... has changed!" for each of them, for every student, which
# hides a real edit. RestoreHiddenTests is nbgrader's OverwriteCells (same restore, same checks),
# quiet only about an unedited released cell; an edited test cell still gets nbgrader's warning.
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "mlsys_lab.course.RestoreHiddenTests",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# The kernel's own start-up warning ("Kernel is running over TCP without encryption": it listens on
# loopback only) is printed once per notebook and says nothing about the submission.
c.Execute.extra_arguments = ["--IPKernelApp.log_level=ERROR"]
# nbgrader 0.9 with SQLAlchemy 2 warns "Object of type <SubmittedAssignment> not in session, add
# operation along 'Student.submissions' will not proceed" when autograde creates a student: the
# session's autoflush runs before nbgrader adds the object itself, which it then does, so the
# gradebook is complete (the course tests read it back). Only that message is silenced.
import warnings  # noqa: E402  (kept beside the reason for it)

warnings.filterwarnings("ignore", message=r"Object of type <\w+> not in session", module=r"nbgrader\.api")

# --- Feedback -------------------------------------------------------------------------------------
# The autograded notebook holds the restored hidden tests; rendered as is, feedback would hand them
# to every later cohort, with tracebacks into mlsys_lab.grading and the instructor's paths.
# SanitizeFeedback keeps each test cell's grade_id, points, visible tests and one-line failure
# message; OfflineFeedbackExporter drops the MathJax script nbgrader's template loads from a CDN.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "mlsys_lab.course.SanitizeFeedback",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
c.GenerateFeedback.exporter_class = "mlsys_lab.course.OfflineFeedbackExporter"
