"""Text attacks (TextAttack recipes) on text-input recommenders.

Kept light: importing this package does not import TextAttack; attacks.text.attack does
(after attacks.text.offline has put NLTK's stopwords in place).
"""
