"""Remote RSS/Atom feeds, one module per step of the data's path:

    fetch.py (+ decode.py)  HTTP: conditional GET, redirects, byte cap, Content-Encoding
    safety.py               URL schemes, private redirects, XML entities, number bounds
    parse.py                feedparser -> EpisodeData (+ problems)
    podcast.py              podcast:person / podcast:transcript, psc:chapters
    poll.py                 many feeds at once -> PollResult each (validators, status)

Their tests sit beside the fixture feeds, one file per step: tests/feeds/test_feeds_<step>.py.
"""
