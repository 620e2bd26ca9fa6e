"""The course's assignments as the grader knows them: one package each, named as the assignment.

Each package exposes ``ASSIGNMENT`` (:class:`pruning_grader.registry.Assignment`): its graded
functions, the course's versions of them, the kit code that is off while they are graded, their
contracts as numbered clauses and the hidden tests that check every clause.
"""
