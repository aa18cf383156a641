Feature: A voter takes part in a poll
  Someone new registers, finds an open poll, votes, changes their mind (API v2) and sees the
  results follow the vote.

  Scenario: Register, find an open poll, vote, change the vote and see the results
    Given an open poll with 2 choices
    And vera has registered and logged in
    When vera looks for open polls matching the poll's question
    Then the poll is among them
    When vera votes for the first choice
    Then the results count 1 vote for the first choice and 0 for the second
    When vera changes the vote to the second choice
    Then the results count 0 votes for the first choice and 1 for the second
    And vera has exactly one vote in the poll, for the second choice
