"""Two agents under a supervisor, in 15 lines (offline it says plainly it cannot act)."""

from vouch.agents import Agent, Supervisor, run_sync, tool


@tool
def price(pair: str) -> float:
    """The last price of a pair such as ETH/USD."""
    return 3000.0


@tool
def convert(amount: float, rate: float) -> float:
    """``amount`` at ``rate``."""
    return amount * rate


analyst = Agent("analyst", "Look up prices.", tools=[price])
trader = Agent("trader", "Value positions.", tools=[convert], model="large")
GOAL = "analyst, then trader: value 2 ETH in USD"

if __name__ == "__main__":
    print(run_sync(Supervisor(agents=[analyst, trader]), GOAL))
