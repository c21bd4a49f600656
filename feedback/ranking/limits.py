"""The ranking input's limits: the page's forms, the API's serializers and the services check the same ones."""

SCREEN_CHOICES = ("left", "right", "tie", "both_bad")
MAX_KEY_LENGTH = 64
MAX_RATIONALE_LENGTH = 280
MAX_NOTE_LENGTH = 500
# A vote decided after this long says nothing useful about effort: store no time rather than a huge one.
MAX_TIME_TAKEN_MS = 6 * 3600 * 1000
MAX_GOLD_EXPLANATION = 2000  # a maintainer's explanation of a known answer
