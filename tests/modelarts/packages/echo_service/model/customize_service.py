# A ModelArts service that reports what it was given: the data shapes and its paths.
import os

import log
from model_service.pytorch_model_service import PTServingBaseService

logger = log.getLogger(__name__)


class EchoService(PTServingBaseService):
    def __init__(self, model_name, model_path):
        super(EchoService, self).__init__(model_name, model_path)
        self.model_dir = os.path.dirname(os.path.realpath(self.model_path))
        logger.info("loaded %s from %s", model_name, model_path)

    def _preprocess(self, data):
        seen = {}
        for key, value in data.items():
            if isinstance(value, dict) and all(hasattr(f, "read") for f in value.values()):
                seen[key] = {name: {"type": type(f).__name__, "read": f.read().decode(),
                                    "name": f.name} for name, f in value.items()}
            else:
                seen[key] = {"value": value, "type": type(value).__name__}
        return seen

    def _inference(self, data):
        return {"seen": data, "model_name": self.model_name,
                "model_file": os.path.basename(self.model_path),
                "model_dir_ok": os.path.isfile(os.path.join(self.model_dir, "config.json"))}

    def _postprocess(self, data):
        data["postprocessed"] = True
        return data
