"""The runnable intro demo, ``workshop run intro``.

* :mod:`.tour`: ``tour``, a live tour of JAX on the participant's own hardware: the jit
  speed-up and compile time, vmap against a loop, grad against finite differences
  (lessons 01-05), and plain against annealed Langevin dynamics (lesson 06).

The demo shares its file's name, so it is reached through it: ``workshop_intro.demos.tour:tour``.
"""
