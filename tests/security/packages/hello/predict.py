class Hello:
    def predict(self, text):
        return {"hello": text}
