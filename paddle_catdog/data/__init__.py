"""The photos: where they are (``locate``), the layouts they come in (``layouts``), which of them
train and which validate (``split``), whether they decode (``check``), how they reach Paddle
(``loader``), and getting them on a fresh machine (``download``; zips, also AI Studio's, unpack
through ``archive``)."""
