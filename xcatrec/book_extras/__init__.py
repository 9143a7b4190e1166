"""Projects only the book uses, kept out of the library's layers (top layer: it may import any of
them, none of them imports it).

* :mod:`~xcatrec.book_extras.credit`: a SYNTHETIC bank with two credit products and a relatedness knob;
* :mod:`~xcatrec.book_extras.logistic_transfer`: logistic-regression transfer between those products;
* :mod:`~xcatrec.book_extras.classification`: accuracy, precision, recall and F1 of thresholded
  probabilities (the credit scorers and the article's image classifier report them);
* :mod:`~xcatrec.book_extras.seed_cnn`: the design article's script (item split, training, held-out
  accuracy by model and domain) around the network of :mod:`xcatrec.models.seed_cnn`.

Chapters "Applications" and "Case study". Nothing is imported here: import the module you need
(only :mod:`~xcatrec.book_extras.seed_cnn` imports TensorFlow).
"""
