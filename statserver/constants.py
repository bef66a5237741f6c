"""Values more than one part of statserver agrees on: time units, the wire formats'
names, the WebSocket close codes it sends, the switch to the pure-Python code."""

#: Times and durations inside statserver are int nanoseconds (Go's ``time.Duration``).
NS_PER_S = 1_000_000_000
#: Go's zero ``time.Time`` (0001-01-01 UTC), in nanoseconds since the Unix epoch.
GO_ZERO_TIME_NS = -62_135_596_800 * NS_PER_S

#: The three wire formats, as named in metrics, logs and the API.
GOB = "gob"
PROTOBUF = "protobuf"
JSON = "json"
FORMATS = (GOB, PROTOBUF, JSON)

#: "Service restart": what Knative's server sends every sender when it shuts down.
CLOSE_SERVICE_RESTART = 1012
#: A frame over ``--max-message-size``.
CLOSE_MESSAGE_TOO_BIG = 1009
#: A peer that breaks a limit (pongs it does not read).
CLOSE_POLICY_VIOLATION = 1008

#: ``STATSERVER_PURE=1`` in the environment: never use ``statserver._speedups``.
PURE_ENV = "STATSERVER_PURE"
