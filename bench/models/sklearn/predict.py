"""A small CPU model: scikit-learn logistic regression on the 4 iris features.

setup() trains it on the iris data shipped inside scikit-learn (no download, ~50 ms), so the
package carries no weights file and the limit and modelport serve an identical model.
"""

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


class Predictor:
    def setup(self):
        iris = load_iris()
        self.labels = [str(n) for n in iris.target_names]
        self.model = LogisticRegression(max_iter=1000).fit(iris.data, iris.target)

    def predict(self, features):
        return self.labels[int(self.model.predict([features])[0])]
