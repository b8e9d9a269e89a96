"""Remote RSS/Atom feeds, one module per step of the data's path:

    fetch.py (+ decode.py)  HTTP: conditional GET, redirects, byte cap, Content-Encoding
    safety.py               URL schemes, private redirects, XML entities, number bounds
    parse.py                feedparser -> EpisodeData (+ problems)
    podcast.py              podcast:person / podcast:transcript, psc:chapters
    poll.py                 many feeds at once -> PollResult each (validators, status)

Tests with real feeds live in tests/feeds/ (fixture feeds) and tests/test_remote.py.
"""
