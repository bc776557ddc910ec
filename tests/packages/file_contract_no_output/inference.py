print("done, but forgot to write output/output.json")
