"""What several test files share: the assignments' reference answers, planted mistakes, and grading
a set of answers through the real trusted checker (sandbox on) without the nbgrader pipeline."""
