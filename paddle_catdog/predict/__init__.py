"""Prediction: ``load_predictor`` (load.py) picks Paddle Inference (inference.py, on the model
export.py writes) or the plain dygraph model (predictor.py); both share preprocessing, batching and
the result format through ``BasePredictor``. Nothing here imports the trainer."""
