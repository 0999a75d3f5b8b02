"""Facts about the project used in generated notebooks (install cells, Colab badges).

A fork of the workshop changes ``REPOSITORY`` here and regenerates the notebooks
(``python ci/build_notebooks.py``).
"""

REPOSITORY = "https://github.com/jax-genai-science/workshop"
BRANCH = "main"
