"""A course without a hub: students hand in through the LMS, `nbgrader zip_collect` unpacks.

Append these lines to the course's nbgrader_config.py (or keep them in this file and load it
with `nbgrader zip_collect pruning --config hub/lms/nbgrader_config.py`). Then:

1. students download `assignments/pruning/pruning.ipynb` from the LMS (upload it there), work
   on it in `make lab`, and upload the notebook as their submission;
2. you download all submissions as one zip (Canvas: "Download Submissions"; Moodle:
   "Download all submissions") into downloaded/pruning/archive/;
3. `nbgrader zip_collect pruning` unpacks it to downloaded/pruning/extracted/ and copies each
   notebook to submitted/<student>/pruning/, where `make grade` finds it.

The file names the LMS gives decide the student id. Canvas names a file
``<login>_<user id>_<submission id>_<your file name>`` (``<login>_late_...`` when late, and a
``-1``, ``-2`` suffix on resubmissions); the pattern below takes the login as the student id
and the notebook's original name as the file. Moodle's ``<Full Name>_<id>_assignsubmission_file_
<file name>``: use ``r"(?:^|.*/)(?P<student_id>[^_/]+)_\\d+_assignsubmission_file_(?P<file_id>[^/]+)$"``.
"""

c = get_config()  # noqa: F821
c.ZipCollectApp.archive_directory = "archive"       # downloaded/<assignment>/archive/*.zip
c.ZipCollectApp.extracted_directory = "extracted"
c.FileNameCollectorPlugin.valid_ext = [".ipynb"]
c.FileNameCollectorPlugin.named_regexp = (
    r"(?:^|.*/)(?P<student_id>[a-z0-9.-]+)_(late_)?\d+_\d+_(?P<file_id>[^/]+?)(-\d+)?\.ipynb$"
)
