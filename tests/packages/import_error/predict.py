import modelport_test_package_that_is_not_installed  # noqa: F401


class Model:
    def predict(self, x):
        return x
