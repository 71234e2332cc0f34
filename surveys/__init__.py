"""Survey mode: semantic-similarity rating of free-text answers (ssr) and its statistics (stats).

The Django app files (apps, models, views) come with the surveys app; these modules need none of them."""
