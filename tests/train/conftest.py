"""The dipole task module is a plug-in that the tests load through ``PONITA_TASKS``, not a test module."""

collect_ignore = ["dipole_task.py"]
