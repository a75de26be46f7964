class Tekkenizer:
    pass
