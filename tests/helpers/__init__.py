"""Helpers the tests share, imported as ``from helpers.<module> import …``.

- ``keras_models``: Keras models built at test time and saved once per session, and the
  facts (names, shapes, parameter counts) to compare a loaded graph with.
- ``onnx_models``: ONNX building blocks (``onnx_model``, ``tensor``, ``value_info``) and saving.
- ``lint``: load and lint a saved model, pick findings.
- ``probe``: the probe tests' model pairs (Keras and the same network as ONNX) and numpy oracle.
- ``hostile``: hostile and broken model files for the security and fuzz tests.
- ``chromium``: headless Chromium over the DevTools protocol (browser test, screenshot).
- ``golden``: golden-file comparison and its regeneration switch.
- ``cli``: run the command line in-process (behind the ``cli`` fixture), one-error-line check.
- ``logs``: training logs (CSVLogger files) with a known shape.
"""
