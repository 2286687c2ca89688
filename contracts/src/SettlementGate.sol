// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ReceiverBase} from "./ReceiverBase.sol";

/// @title SettlementGate - delivery-versus-payment escrow settled only on a DON-verified price
/// @notice The seller escrows the base leg, the buyer escrows the most the quote leg can cost;
/// a verified report whose price lies inside the trade's bounds swaps the legs at that price.
/// Prices carry 18 decimals; both tokens are assumed to have 18 decimals.
/// Guard rails, all enforced onchain: only tokens the admin allowed, and only deposits that arrive
/// in full (the gate's balance is measured around each deposit: fee-on-transfer tokens are
/// refused, so no trade is ever paid from another's escrow); a per-period notional limit per token
/// (both legs count at settlement); an approver's EIP-712 signature for trades above a per-token
/// threshold (a human in the loop), judged by the thresholds in force at settlement; and a pause
/// by a guardian. Each leg of a payout (settlement or refund) is pushed on its own with a fixed
/// gas allowance; a leg its token will not deliver (a blocklist, a pause, a reverting hook) is
/// credited to its party, who withdraws it later, possibly to another address, so one party's
/// token can never freeze the other party's leg. Refunds and withdrawals stay open while paused,
/// so parties can always leave. Roles (OpenZeppelin AccessControl): DEFAULT_ADMIN_ROLE sets limits and thresholds,
/// grants roles and unpauses; GUARDIAN_ROLE pauses; APPROVER_ROLE signs approvals. The deployer
/// starts with the admin and guardian roles.
contract SettlementGate is ReceiverBase, ReentrancyGuard, Pausable, AccessControl, EIP712 {
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
        bool needsApproval;
        bool approved;
        Status status;
    }

    /// @notice A token's notional limit: at most `cap` units may move per `period` seconds.
    struct Limit {
        uint192 cap;
        uint64 period;
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
    /// @notice The trade is above an approval threshold and no approver has signed it yet.
    error ApprovalRequired(uint256 tradeId);
    /// @notice The approval signature does not come from an account with APPROVER_ROLE.
    error InvalidApproval(uint256 tradeId, address signer);
    /// @notice The trade needs no approval, or already has one.
    error ApprovalNotPending(uint256 tradeId);
    /// @notice Settling would move more of `token` this period than its limit allows.
    error NotionalLimitExceeded(address token, uint256 periodStart, uint256 used, uint256 amount, uint256 cap);
    /// @notice A limit with a cap but no period (or a period but no cap).
    error InvalidLimit(uint256 cap, uint64 period);
    /// @notice The admin has not allowed this token.
    error TokenNotAllowed(address token);
    /// @notice A deposit arrived short (a fee-on-transfer token): expected and received units.
    error TransferShortfall(address token, uint256 expected, uint256 received);
    /// @notice Nothing is credited to the account in this token.
    error NothingOwed(address account, address token);
    /// @notice Too little gas left to push a payout with its full allowance; retry with more.
    error InsufficientGasForPayout(uint256 needed, uint256 available);

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
    /// @notice Emitted when a trade above a threshold has to wait for an approver's signature.
    event ApprovalRequested(uint256 indexed tradeId);
    /// @notice Emitted when an approver's signature is recorded for a trade.
    event TradeApproved(uint256 indexed tradeId, address indexed approver);
    /// @notice Emitted when a token's notional limit is set (cap 0 and period 0: no limit).
    event LimitSet(address indexed token, uint256 cap, uint64 period);
    /// @notice Emitted when a token's approval threshold is set (0: no approval needed).
    event ApprovalThresholdSet(address indexed token, uint256 threshold);
    /// @notice Emitted when a token is allowed or disallowed for new trades.
    event TokenAllowed(address indexed token, bool allowed);
    /// @notice Emitted when a payout leg could not be pushed and was credited to its party.
    event PaymentDeferred(uint256 indexed tradeId, address indexed account, address indexed token, uint256 amount);
    /// @notice Emitted when an account withdraws what was credited to it.
    event Withdrawn(address indexed account, address indexed token, address to, uint256 amount);

    /// @notice The contract's type and version.
    string public constant typeAndVersion = "vouch SettlementGate 1.2.0";
    /// @notice May pause the gate.
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");
    /// @notice May sign trade approvals.
    bytes32 public constant APPROVER_ROLE = keccak256("APPROVER_ROLE");
    /// @notice The EIP-712 type an approver signs: the trade's id and every term of it.
    bytes32 public constant TRADE_APPROVAL_TYPEHASH = keccak256(
        "TradeApproval(uint256 tradeId,address seller,address buyer,address baseToken,uint256 baseAmount,"
        "address quoteToken,uint256 minPrice,uint256 maxPrice,uint64 deadline,bytes32 actionHash)"
    );
    uint256 internal constant PRICE_UNIT = 1e18;
    /// @notice The gas each pushed payout leg gets (a token transfer, with room for hooks).
    uint256 public constant PAYOUT_GAS = 100_000;

    uint256 internal s_nextTradeId = 1;
    mapping(uint256 tradeId => Trade trade) internal s_trades;
    mapping(address token => Limit limit) internal s_limits;
    mapping(address token => mapping(uint256 periodIndex => uint256 used)) internal s_used;
    mapping(address token => uint256 threshold) internal s_approvalThresholds;
    mapping(address token => bool allowed) internal s_allowedTokens;
    mapping(address account => mapping(address token => uint256 amount)) internal s_owed;

    /// @param forwarder The only address allowed to deliver reports.
    /// @param workflowOwner The workflow owner reports must name.
    /// @param workflowId The workflow id reports must name.
    /// @param freshnessWindow How old (seconds) a report may be when it arrives.
    /// @param donId The only DON whose reports are accepted (0: any DON of the forwarder).
    /// @param minConfigVersion The lowest accepted config version of that DON.
    constructor(
        address forwarder,
        address workflowOwner,
        bytes32 workflowId,
        uint32 freshnessWindow,
        uint32 donId,
        uint32 minConfigVersion
    )
        ReceiverBase(forwarder, workflowOwner, workflowId, freshnessWindow, donId, minConfigVersion)
        EIP712("vouch SettlementGate", "1")
    {
        _grantRole(DEFAULT_ADMIN_ROLE, msg.sender);
        _grantRole(GUARDIAN_ROLE, msg.sender);
    }

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
    ) external nonReentrant whenNotPaused returns (uint256 tradeId) {
        if (buyer == address(0) || baseToken == address(0) || quoteToken == address(0)) {
            revert ZeroAddress();
        }
        if (baseAmount == 0 || minPrice == 0) revert ZeroAmount();
        if (minPrice > maxPrice) revert InvalidPriceBounds(minPrice, maxPrice);
        if (deadline <= block.timestamp) revert DeadlineInPast(deadline, block.timestamp);
        if (!s_allowedTokens[baseToken]) revert TokenNotAllowed(baseToken);
        if (!s_allowedTokens[quoteToken]) revert TokenNotAllowed(quoteToken);
        tradeId = s_nextTradeId++;
        uint256 maxQuote = (baseAmount * maxPrice + PRICE_UNIT - 1) / PRICE_UNIT;
        bool needsApproval = _aboveThreshold(baseToken, baseAmount) || _aboveThreshold(quoteToken, maxQuote);
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
            needsApproval,
            false,
            Status.Open
        );
        emit TradeCreated(
            tradeId, msg.sender, buyer, baseToken, baseAmount, quoteToken, minPrice, maxPrice, deadline, actionHash
        );
        if (needsApproval) emit ApprovalRequested(tradeId);
        _deposit(IERC20(baseToken), baseAmount);
    }

    /// @notice Escrow the quote leg (the most it can cost) as the buyer.
    /// @param tradeId The trade to fund.
    function fundTrade(uint256 tradeId) external nonReentrant whenNotPaused {
        Trade storage trade = _trade(tradeId);
        if (trade.status != Status.Open) revert TradeNotOpen(tradeId, trade.status);
        if (msg.sender != trade.buyer) revert NotParty(tradeId, msg.sender);
        if (block.timestamp > trade.deadline) revert TradeExpired(tradeId, trade.deadline, block.timestamp);
        trade.status = Status.Funded;
        emit TradeFunded(tradeId, trade.maxQuote);
        _deposit(IERC20(trade.quoteToken), trade.maxQuote);
    }

    /// @notice Return the deposits of an expired, unsettled trade; either party may call. Each
    /// leg goes to its party on its own: one the token will not deliver is credited (withdraw).
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
        _pay(tradeId, trade.baseToken, trade.seller, trade.baseAmount);
        if (quoteAmount > 0) _pay(tradeId, trade.quoteToken, trade.buyer, quoteAmount);
    }

    /// @notice Withdraw everything credited to the caller in `token` (payout legs that could not
    /// be pushed). Open while paused.
    /// @param token The token.
    /// @return amount What was paid.
    function withdraw(address token) external returns (uint256 amount) {
        return _withdraw(token, msg.sender);
    }

    /// @notice As withdraw, paid to `to` (for a party its token will not pay, e.g. blocklisted).
    /// @param token The token.
    /// @param to Where to send it.
    /// @return amount What was paid.
    function withdrawTo(address token, address to) external returns (uint256 amount) {
        if (to == address(0)) revert ZeroAddress();
        return _withdraw(token, to);
    }

    function _withdraw(address token, address to) internal nonReentrant returns (uint256 amount) {
        amount = s_owed[msg.sender][token];
        if (amount == 0) revert NothingOwed(msg.sender, token);
        s_owed[msg.sender][token] = 0;
        emit Withdrawn(msg.sender, token, to, amount);
        IERC20(token).safeTransfer(to, amount);
    }

    /// @notice What is credited to `account` in `token`, waiting for withdraw.
    /// @param account The account.
    /// @param token The token.
    function owed(address account, address token) external view returns (uint256) {
        return s_owed[account][token];
    }

    /// @notice Record an approver's EIP-712 signature for a trade above a threshold; anyone may
    /// submit it (the approver signs offchain, e.g. after a human reviewed the proposal).
    /// @param tradeId The trade to approve.
    /// @param signature The approver's signature over TradeApproval (see approvalDigest).
    function approveTrade(uint256 tradeId, bytes calldata signature) external nonReentrant whenNotPaused {
        Trade storage trade = _trade(tradeId);
        // Any open trade may be approved ahead: the thresholds in force at settlement decide
        // whether it needed to be.
        if (trade.approved) revert ApprovalNotPending(tradeId);
        Status status = trade.status;
        if (status != Status.Open && status != Status.Funded) revert TradeClosed(tradeId, status);
        // slither-disable-next-line unused-return (the error's detail is not needed: any error refuses)
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(approvalDigest(tradeId), signature);
        if (err != ECDSA.RecoverError.NoError || !hasRole(APPROVER_ROLE, signer)) {
            revert InvalidApproval(tradeId, signer);
        }
        trade.approved = true;
        emit TradeApproved(tradeId, signer);
    }

    /// @notice The EIP-712 digest an approver signs for `tradeId` (binds this chain, this gate and
    /// every term of the trade).
    /// @param tradeId The trade.
    function approvalDigest(uint256 tradeId) public view returns (bytes32) {
        Trade storage t = s_trades[tradeId];
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    TRADE_APPROVAL_TYPEHASH,
                    tradeId,
                    t.seller,
                    t.buyer,
                    t.baseToken,
                    t.baseAmount,
                    t.quoteToken,
                    t.minPrice,
                    t.maxPrice,
                    t.deadline,
                    t.actionHash
                )
            )
        );
    }

    /// @notice Limit how much of `token` may move through settlements per period.
    /// @param token The token.
    /// @param cap Units per period (0 together with period 0: no limit).
    /// @param period The period in seconds; periods are aligned to multiples of it since the epoch.
    function setLimit(address token, uint256 cap, uint64 period) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if ((cap == 0) != (period == 0) || cap > type(uint192).max) revert InvalidLimit(cap, period);
        // forge-lint: disable-next-line(unsafe-typecast)
        s_limits[token] = Limit(uint192(cap), period); // cap checked above
        emit LimitSet(token, cap, period);
    }

    /// @notice Allow (or disallow) `token` in new trades. Allow only plain ERC-20s: deposits that
    /// arrive short are refused anyway, but a token that shrinks balances later (rebasing) or
    /// can take the payout's gas would still be a risk. Trades already open are not affected.
    /// @param token The token.
    /// @param allowed Whether new trades may use it.
    function setTokenAllowed(address token, bool allowed) external onlyRole(DEFAULT_ADMIN_ROLE) {
        s_allowedTokens[token] = allowed;
        emit TokenAllowed(token, allowed);
    }

    /// @notice Whether new trades may use `token`.
    /// @param token The token.
    function isTokenAllowed(address token) external view returns (bool) {
        return s_allowedTokens[token];
    }

    /// @notice Trades moving more than `threshold` of `token` (base amount, or the most the quote
    /// leg can cost) need an approver's signature before they settle. The threshold in force when
    /// a trade settles applies, whatever it was when the trade was created.
    /// @param token The token.
    /// @param threshold The largest amount that needs no approval; 0 for none.
    function setApprovalThreshold(address token, uint256 threshold) external onlyRole(DEFAULT_ADMIN_ROLE) {
        s_approvalThresholds[token] = threshold;
        emit ApprovalThresholdSet(token, threshold);
    }

    /// @notice Stop new trades, funding, approvals and settlements (refunds stay open).
    function pause() external onlyRole(GUARDIAN_ROLE) {
        _pause();
    }

    /// @notice Resume after a pause.
    function unpause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _unpause();
    }

    /// @notice A token's limit and how much of it this period has used.
    /// @param token The token.
    /// @return cap Units per period (0: no limit).
    /// @return period Seconds per period.
    /// @return used Units settled in the current period.
    function getLimit(address token) external view returns (uint256 cap, uint64 period, uint256 used) {
        Limit memory limit = s_limits[token];
        if (limit.period == 0) return (0, 0, 0);
        return (limit.cap, limit.period, s_used[token][block.timestamp / limit.period]);
    }

    /// @notice A token's approval threshold (0: no approval needed).
    /// @param token The token.
    function getApprovalThreshold(address token) external view returns (uint256) {
        return s_approvalThresholds[token];
    }

    /// @notice One trade (all fields zero and status None if it does not exist).
    /// @param tradeId The trade's id.
    function getTrade(uint256 tradeId) external view returns (Trade memory) {
        return s_trades[tradeId];
    }

    /// @inheritdoc ReceiverBase
    /// @dev payload = abi.encode(uint256 tradeId, uint256 price); quote = baseAmount * price / 1e18,
    /// rounded down, so the buyer never pays more than the escrowed maxQuote.
    function _processReport(bytes32, bytes2, bytes32 actionHash, bytes memory payload)
        internal
        override
        nonReentrant
        whenNotPaused
    {
        (uint256 tradeId, uint256 price) = abi.decode(payload, (uint256, uint256));
        Trade storage trade = _trade(tradeId);
        if (trade.status != Status.Funded) revert TradeNotFunded(tradeId, trade.status);
        if (
            !trade.approved
                && (_aboveThreshold(trade.baseToken, trade.baseAmount)
                    || _aboveThreshold(trade.quoteToken, trade.maxQuote))
        ) revert ApprovalRequired(tradeId);
        if (actionHash != trade.actionHash) revert ActionHashMismatch(tradeId, trade.actionHash, actionHash);
        if (block.timestamp > trade.deadline) revert TradeExpired(tradeId, trade.deadline, block.timestamp);
        if (price < trade.minPrice || price > trade.maxPrice) {
            revert PriceOutOfBounds(tradeId, price, trade.minPrice, trade.maxPrice);
        }
        uint256 quote = trade.baseAmount * price / PRICE_UNIT;
        _consumeLimit(trade.baseToken, trade.baseAmount);
        _consumeLimit(trade.quoteToken, quote);
        trade.status = Status.Settled;
        emit TradeSettled(tradeId, price, quote, actionHash);
        _pay(tradeId, trade.baseToken, trade.buyer, trade.baseAmount);
        _pay(tradeId, trade.quoteToken, trade.seller, quote);
        if (trade.maxQuote > quote) _pay(tradeId, trade.quoteToken, trade.buyer, trade.maxQuote - quote);
    }

    /// @dev Pull `amount` of `token` from the caller; refuse it unless all of it arrived.
    function _deposit(IERC20 token, uint256 amount) internal {
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != amount) revert TransferShortfall(address(token), amount, received);
    }

    /// @dev Push one payout leg with exactly PAYOUT_GAS (never less: with too little gas left the
    /// whole call reverts, so whether a leg is pushed or credited is the token's doing, not the
    /// submitter's); a transfer that fails or answers false credits the leg to `to` instead.
    function _pay(uint256 tradeId, address token, address to, uint256 amount) internal {
        uint256 needed = PAYOUT_GAS + PAYOUT_GAS / 63 + 5_000;
        if (gasleft() < needed) revert InsufficientGasForPayout(needed, gasleft());
        bytes memory data = abi.encodeCall(IERC20.transfer, (to, amount));
        bool ok;
        // slither-disable-next-line assembly (a call capped at PAYOUT_GAS that copies at most one word back, so a token can neither take the gas of the other leg nor make the gate copy a huge answer)
        assembly ("memory-safe") {
            ok := call(PAYOUT_GAS, token, 0, add(data, 0x20), mload(data), 0x00, 0x20)
            // as SafeERC20: success with no answer (from a contract) or an answer of true
            let answered := gt(returndatasize(), 0x1f)
            ok := and(
                ok,
                or(and(answered, eq(mload(0x00), 1)), and(iszero(returndatasize()), gt(extcodesize(token), 0)))
            )
        }
        if (!ok) {
            s_owed[to][token] += amount;
            emit PaymentDeferred(tradeId, to, token, amount);
        }
    }

    /// @dev Count `amount` of `token` against its limit for the current period.
    function _consumeLimit(address token, uint256 amount) internal {
        Limit memory limit = s_limits[token];
        if (limit.period == 0) return;
        uint256 index = block.timestamp / limit.period;
        uint256 used = s_used[token][index];
        if (used + amount > limit.cap) {
            // slither-disable-next-line divide-before-multiply (rounding down to the period start is the point)
            revert NotionalLimitExceeded(token, index * limit.period, used, amount, limit.cap);
        }
        s_used[token][index] = used + amount;
    }

    /// @dev Whether `amount` of `token` is above the token's approval threshold.
    function _aboveThreshold(address token, uint256 amount) internal view returns (bool) {
        uint256 threshold = s_approvalThresholds[token];
        return threshold != 0 && amount > threshold;
    }

    /// @inheritdoc ReceiverBase
    function supportsInterface(bytes4 interfaceId) public view override(ReceiverBase, AccessControl) returns (bool) {
        return ReceiverBase.supportsInterface(interfaceId) || AccessControl.supportsInterface(interfaceId);
    }

    /// @dev The trade, or UnknownTrade.
    function _trade(uint256 tradeId) internal view returns (Trade storage trade) {
        trade = s_trades[tradeId];
        if (trade.status == Status.None) revert UnknownTrade(tradeId);
    }
}
