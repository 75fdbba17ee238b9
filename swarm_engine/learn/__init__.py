"""Learning: episode statistics, the learned score model and the on-disk store."""

from swarm_engine.learn.collect import record_eval
from swarm_engine.learn.score import ScoreModel, rate
from swarm_engine.learn.stats import START, Episode, LearnStats, episodes_from_events
from swarm_engine.learn.store import LearningStore, learning_key

__all__ = ["LearnStats", "Episode", "START", "episodes_from_events", "ScoreModel", "rate",
           "LearningStore", "learning_key", "record_eval"]
