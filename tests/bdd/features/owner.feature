Feature: An owner runs a poll
  A poll starts as a draft only its owner sees; it takes votes while open and none once closed.

  Scenario: Draft a poll, add choices, open it and close it
    Given olga has registered and logged in
    When olga drafts the poll "Where shall we meet on Friday?"
    Then the poll is a draft owned by olga
    And other people do not see the draft
    When olga adds the choices "Cafe", "Park" and "Library"
    Then the poll offers "Cafe", "Park" and "Library" in that order
    When olga opens the poll
    Then the poll is open for API clients
    And the poll is among the open polls
    When olga closes the poll
    Then the poll is closed for API clients
    And a new vote in the poll is refused as "poll-not-open"
