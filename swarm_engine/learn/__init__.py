"""Learning: episode statistics, the learned score model, the offline model and its store."""

from swarm_engine.learn.collect import record_eval, record_session
from swarm_engine.learn.model import OfflineModel, prior_tables, selector_from_model
from swarm_engine.learn.offline import LearnOutcome, learn_once
from swarm_engine.learn.score import ScoreModel, rate
from swarm_engine.learn.session import SessionRecorder
from swarm_engine.learn.stats import START, Episode, LearnStats, episodes_from_events
from swarm_engine.learn.store import LearningStore, learning_key

__all__ = ["LearnStats", "Episode", "START", "episodes_from_events", "ScoreModel", "rate",
           "LearningStore", "learning_key", "record_eval", "record_session", "OfflineModel", "prior_tables",
           "selector_from_model", "LearnOutcome", "learn_once", "SessionRecorder"]
