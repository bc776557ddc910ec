# coding:utf-8
# The manual's scikit-learn service, with the built-in _inference (the model file is loaded
# by the base class and its predict called).
import collections
import json

from model_service.python_model_service import XgSkServingBaseService


class UserService(XgSkServingBaseService):

    # request data preprocess
    def _preprocess(self, data):
        list_data = []
        json_data = json.loads(data, object_pairs_hook=collections.OrderedDict)
        for element in json_data["data"]["req_data"]:
            array = []
            for each in element:
                array.append(element[each])
            list_data.append(array)
        return list_data

    # predict result process
    def _postprocess(self, data):
        resp_data = []
        for element in data:
            resp_data.append({"predictresult": element})
        return {"resp_data": resp_data}
