# An image classifier in the shape of the ModelArts PyTorch example, on numpy: a softmax
# over 8x8 grey pixels, weights saved with numpy (np.savez) under a .pth name.
import base64
import io
import json
import os

import log
import numpy as np
from PIL import Image
from model_service.pytorch_model_service import PTServingBaseService

logger = log.getLogger(__name__)


class ImageService(PTServingBaseService):

    def __init__(self, model_name, model_path):
        # call the parent constructor
        super(ImageService, self).__init__(model_name, model_path)
        weights = np.load(self.model_path)
        self.w, self.b = weights["w"], weights["b"]
        # model/ holds labels.json next to the weights
        dir_path = os.path.dirname(os.path.realpath(self.model_path))
        with open(os.path.join(dir_path, "labels.json")) as f:
            self.label = json.load(f)
        logger.info("loaded %s", model_name)

    def _preprocess(self, data):
        # 1. form-data: data = {"key": {"file name": <file io>}}
        # 2. json:      data = {"key": "base64 encoded image"}
        preprocessed_data = {}
        for k, v in data.items():
            if isinstance(v, dict):
                for file_name, file_content in v.items():
                    preprocessed_data[k] = (file_name, self._pixels(Image.open(file_content)))
            else:
                image = Image.open(io.BytesIO(base64.b64decode(v)))
                preprocessed_data[k] = ("", self._pixels(image))
        return preprocessed_data

    @staticmethod
    def _pixels(image):
        with image:
            grey = image.convert("L").resize((8, 8))
            return np.asarray(grey, dtype=np.float32).reshape(64) / 255.0

    def _inference(self, data):
        result = {}
        for k, (file_name, x) in data.items():
            logits = self.w @ x + self.b
            p = np.exp(logits - logits.max())
            result[k] = (file_name, p / p.sum())
        return result

    def _postprocess(self, data):
        file_name, probs = data["images"]
        best = int(np.argmax(probs))
        return {"predicted_label": self.label[best],
                "scores": [[label, round(float(p), 4)] for label, p in zip(self.label, probs)],
                "file_name": file_name}
