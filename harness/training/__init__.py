"""One training lifecycle shared by every trainer.

``lifecycle`` (plan, cache, resumable work folder, several processes, failures) runs a ``recipe``
per trainer (defaults, checks, build the trainer, save), which the backends define; ``params``
(defaults and value checks), ``arguments`` (trainer arguments, built once for all trainers),
``summary``, ``failure`` (out-of-memory advice), ``resume``, ``overfitting``, ``hardware``.
Nothing here imports a backend.
"""
