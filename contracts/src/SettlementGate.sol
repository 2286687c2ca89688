// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {ReceiverBase} from "./ReceiverBase.sol";

/// @title SettlementGate - delivery-versus-payment escrow settled only on a DON-verified price
/// @notice The seller escrows the base leg, the buyer escrows the most the quote leg can cost;
/// a verified report whose price lies inside the trade's bounds swaps the legs at that price.
/// Prices carry 18 decimals; both tokens are assumed to have 18 decimals.
contract SettlementGate is ReceiverBase, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice The lifecycle of a trade.
    enum Status {
        None,
        Open,
        Funded,
        Settled,
        Refunded
    }

    /// @notice One trade and its escrow.
    struct Trade {
        address seller;
        address buyer;
        address baseToken;
        uint256 baseAmount;
        address quoteToken;
        uint256 minPrice;
        uint256 maxPrice;
        uint256 maxQuote;
        uint64 deadline;
        bytes32 actionHash;
        Status status;
    }

    /// @notice No trade has this id.
    error UnknownTrade(uint256 tradeId);
    /// @notice A report arrived for a trade that is not Funded.
    error TradeNotFunded(uint256 tradeId, Status status);
    /// @notice The trade is already Settled or Refunded.
    error TradeClosed(uint256 tradeId, Status status);
    /// @notice The trade is not open for funding.
    error TradeNotOpen(uint256 tradeId, Status status);
    /// @notice The report carries another action hash than the trade.
    error ActionHashMismatch(uint256 tradeId, bytes32 expected, bytes32 received);
    /// @notice The trade's deadline has passed.
    error TradeExpired(uint256 tradeId, uint64 deadline, uint256 nowTs);
    /// @notice The trade's deadline has not passed yet.
    error TradeNotExpired(uint256 tradeId, uint64 deadline, uint256 nowTs);
    /// @notice The attested price lies outside the trade's bounds.
    error PriceOutOfBounds(uint256 tradeId, uint256 price, uint256 minPrice, uint256 maxPrice);
    /// @notice The caller is not the party the call is for.
    error NotParty(uint256 tradeId, address caller);
    /// @notice A zero address where an account or token is needed.
    error ZeroAddress();
    /// @notice A zero amount or price.
    error ZeroAmount();
    /// @notice minPrice > maxPrice.
    error InvalidPriceBounds(uint256 minPrice, uint256 maxPrice);
    /// @notice The deadline is not in the future (at creation).
    error DeadlineInPast(uint64 deadline, uint256 nowTs);

    /// @notice Emitted when a seller opens and escrows a trade.
    event TradeCreated(
        uint256 indexed tradeId,
        address indexed seller,
        address indexed buyer,
        address baseToken,
        uint256 baseAmount,
        address quoteToken,
        uint256 minPrice,
        uint256 maxPrice,
        uint64 deadline,
        bytes32 actionHash
    );
    /// @notice Emitted when the buyer escrows the quote leg.
    event TradeFunded(uint256 indexed tradeId, uint256 maxQuote);
    /// @notice Emitted when a verified report settles a trade.
    event TradeSettled(uint256 indexed tradeId, uint256 price, uint256 quoteAmount, bytes32 actionHash);
    /// @notice Emitted when an expired trade's deposits are returned (quoteAmount 0 if it was never funded).
    event TradeRefunded(uint256 indexed tradeId, uint256 baseAmount, uint256 quoteAmount);

    /// @notice The contract's type and version.
    string public constant typeAndVersion = "vouch SettlementGate 1.0.0";
    uint256 internal constant PRICE_UNIT = 1e18;

    uint256 internal s_nextTradeId = 1;
    mapping(uint256 tradeId => Trade trade) internal s_trades;

    /// @param forwarder The only address allowed to deliver reports.
    /// @param workflowOwner The workflow owner reports must name.
    /// @param workflowId The workflow id reports must name.
    /// @param freshnessWindow How old (seconds) a report may be when it arrives.
    constructor(address forwarder, address workflowOwner, bytes32 workflowId, uint32 freshnessWindow)
        ReceiverBase(forwarder, workflowOwner, workflowId, freshnessWindow)
    {}

    /// @notice Open a trade as the seller and escrow the base leg.
    /// @param buyer Who receives the base leg and pays the quote leg.
    /// @param baseToken The token the seller delivers.
    /// @param baseAmount How much of it.
    /// @param quoteToken The token the buyer pays in.
    /// @param minPrice The lowest acceptable attested price (18 decimals).
    /// @param maxPrice The highest acceptable attested price (18 decimals).
    /// @param deadline After it, the trade cannot settle and can be refunded.
    /// @param actionHash The hash of the agent proposal a report must carry.
    /// @return tradeId The new trade's id.
    function createTrade(
        address buyer,
        address baseToken,
        uint256 baseAmount,
        address quoteToken,
        uint256 minPrice,
        uint256 maxPrice,
        uint64 deadline,
        bytes32 actionHash
    ) external nonReentrant returns (uint256 tradeId) {
        if (buyer == address(0) || baseToken == address(0) || quoteToken == address(0)) {
            revert ZeroAddress();
        }
        if (baseAmount == 0 || minPrice == 0) revert ZeroAmount();
        if (minPrice > maxPrice) revert InvalidPriceBounds(minPrice, maxPrice);
        if (deadline <= block.timestamp) revert DeadlineInPast(deadline, block.timestamp);
        tradeId = s_nextTradeId++;
        uint256 maxQuote = (baseAmount * maxPrice + PRICE_UNIT - 1) / PRICE_UNIT;
        s_trades[tradeId] = Trade(
            msg.sender,
            buyer,
            baseToken,
            baseAmount,
            quoteToken,
            minPrice,
            maxPrice,
            maxQuote,
            deadline,
            actionHash,
            Status.Open
        );
        emit TradeCreated(
            tradeId, msg.sender, buyer, baseToken, baseAmount, quoteToken, minPrice, maxPrice, deadline, actionHash
        );
        IERC20(baseToken).safeTransferFrom(msg.sender, address(this), baseAmount);
    }

    /// @notice Escrow the quote leg (the most it can cost) as the buyer.
    /// @param tradeId The trade to fund.
    function fundTrade(uint256 tradeId) external nonReentrant {
        Trade storage trade = _trade(tradeId);
        if (trade.status != Status.Open) revert TradeNotOpen(tradeId, trade.status);
        if (msg.sender != trade.buyer) revert NotParty(tradeId, msg.sender);
        if (block.timestamp > trade.deadline) revert TradeExpired(tradeId, trade.deadline, block.timestamp);
        trade.status = Status.Funded;
        emit TradeFunded(tradeId, trade.maxQuote);
        IERC20(trade.quoteToken).safeTransferFrom(msg.sender, address(this), trade.maxQuote);
    }

    /// @notice Return the deposits of an expired, unsettled trade; either party may call.
    /// @param tradeId The trade to refund.
    function refund(uint256 tradeId) external nonReentrant {
        Trade storage trade = _trade(tradeId);
        if (msg.sender != trade.seller && msg.sender != trade.buyer) revert NotParty(tradeId, msg.sender);
        if (block.timestamp <= trade.deadline) revert TradeNotExpired(tradeId, trade.deadline, block.timestamp);
        Status status = trade.status;
        if (status != Status.Open && status != Status.Funded) revert TradeClosed(tradeId, status);
        uint256 quoteAmount = status == Status.Funded ? trade.maxQuote : 0;
        trade.status = Status.Refunded;
        emit TradeRefunded(tradeId, trade.baseAmount, quoteAmount);
        IERC20(trade.baseToken).safeTransfer(trade.seller, trade.baseAmount);
        if (quoteAmount > 0) IERC20(trade.quoteToken).safeTransfer(trade.buyer, quoteAmount);
    }

    /// @notice One trade (all fields zero and status None if it does not exist).
    /// @param tradeId The trade's id.
    function getTrade(uint256 tradeId) external view returns (Trade memory) {
        return s_trades[tradeId];
    }

    /// @inheritdoc ReceiverBase
    /// @dev payload = abi.encode(uint256 tradeId, uint256 price); quote = baseAmount * price / 1e18,
    /// rounded down, so the buyer never pays more than the escrowed maxQuote.
    function _processReport(bytes32, bytes2, bytes32 actionHash, bytes memory payload) internal override nonReentrant {
        (uint256 tradeId, uint256 price) = abi.decode(payload, (uint256, uint256));
        Trade storage trade = _trade(tradeId);
        if (trade.status != Status.Funded) revert TradeNotFunded(tradeId, trade.status);
        if (actionHash != trade.actionHash) revert ActionHashMismatch(tradeId, trade.actionHash, actionHash);
        if (block.timestamp > trade.deadline) revert TradeExpired(tradeId, trade.deadline, block.timestamp);
        if (price < trade.minPrice || price > trade.maxPrice) {
            revert PriceOutOfBounds(tradeId, price, trade.minPrice, trade.maxPrice);
        }
        uint256 quote = trade.baseAmount * price / PRICE_UNIT;
        trade.status = Status.Settled;
        emit TradeSettled(tradeId, price, quote, actionHash);
        IERC20(trade.baseToken).safeTransfer(trade.buyer, trade.baseAmount);
        IERC20(trade.quoteToken).safeTransfer(trade.seller, quote);
        if (trade.maxQuote > quote) IERC20(trade.quoteToken).safeTransfer(trade.buyer, trade.maxQuote - quote);
    }

    /// @dev The trade, or UnknownTrade.
    function _trade(uint256 tradeId) internal view returns (Trade storage trade) {
        trade = s_trades[tradeId];
        if (trade.status == Status.None) revert UnknownTrade(tradeId);
    }
}
